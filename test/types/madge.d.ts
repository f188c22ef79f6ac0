// The part of madge's API the architecture test uses (madge ships no type declarations).
declare module 'madge' {
  interface MadgeResult {
    /** file → the files it imports, paths relative to the base folder. */
    obj(): Record<string, string[]>;
    circular(): string[][];
  }
  interface MadgeConfig {
    fileExtensions?: string[];
    tsConfig?: string;
    baseDir?: string;
    detectiveOptions?: { ts?: { skipTypeImports?: boolean } };
  }
  export default function madge(path: string, config?: MadgeConfig): Promise<MadgeResult>;
}
