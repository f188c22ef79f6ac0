// The screens' ids (the URL hash: #/data). A new screen gets its id here and its row in screens.ts.
export const SCREEN_IDS = ['start', 'model', 'data', 'method', 'train', 'chat', 'evaluate', 'export', 'demo', 'bench'] as const;
export type ScreenId = (typeof SCREEN_IDS)[number];
