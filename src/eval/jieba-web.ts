// jieba for the browser: the same jieba-wasm build as the command line's (jieba-node.ts), in its web packaging,
// loaded once, on first use, by the engine worker (the Evaluate screen's ROUGE). The bundler emits the
// WebAssembly file beside the worker (new URL(..., import.meta.url) in the package's loader). docs/ui.md.
import type { Segmenter } from './metrics';

let loading: Promise<Segmenter> | undefined;

/** jieba.cut(text) with the HMM on, as LLaMA-Factory calls it, once its WebAssembly is instantiated. */
export function loadJiebaWeb(): Promise<Segmenter> {
  loading ??= (async () => {
    const jieba = await import('jieba-wasm/web');
    await jieba.default();
    return (text: string) => (text === '' ? [] : jieba.cut(text, true));
  })().catch((e: unknown) => {
    loading = undefined;
    throw e;
  });
  return loading;
}
