// Exports: plain data in, files (name → bytes) out. No GPU, no Node imports.
export * from './peft-adapter';
export * from './bottleneck-adapter';
export * from './prompt-tuning';
export * from './merged-model';
export * from './llamafactory-job';
export * from './zip';
