// Datasets: file → records → conversations → token ids + labels → batches.
export * from './types';
export { detectFormat, normaliseRecord, templateMessages, type NormaliseResult } from './normalize';
export { parseDatasetText, firstInvalidUtf8, DEFAULT_MAX_RECORD_BYTES, type ParseOptions, type ParsedDataset } from './parse';
export * from './encode';
export * from './shuffle';
export * from './preference';
export * from './hub-dataset';
export * from './parquet';
