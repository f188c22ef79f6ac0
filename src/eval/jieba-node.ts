// jieba (jieba-rs compiled to WebAssembly, the jieba-wasm package) for Node: the command line's segmenter for the
// ROUGE metrics. The browser worker loads the same WebAssembly build (jieba-web.ts), so both segment alike.
import { cut } from 'jieba-wasm';
import type { Segmenter } from './metrics';

/** jieba.cut(text) with the HMM on, as LLaMA-Factory calls it. */
export const jiebaCut: Segmenter = (text) => (text === '' ? [] : cut(text, true));
