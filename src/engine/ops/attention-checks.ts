// Shape and aliasing checks shared by the attention kernels (ops/flash-attention.ts, bench/row-attention.ts):
// the same rules and the same messages for both.
import { tensorText, type Tensor } from '../tensor';

export interface Dims {
  B: number;
  T: number;
  S: number;
  H: number;
  Hkv: number;
  D: number;
}

const sameShape = (t: Tensor, shape: readonly number[]): boolean =>
  t.dtype === 'f32' && t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);

/** Validates q [B, T, H, D], k/v [B, S, Hkv, D], keyMask [B, S] (or flat [B·S]) and returns the sizes. */
export function dims(op: string, q: Tensor, k: Tensor, v: Tensor, keyMask: Tensor | null): Dims {
  const [B, T, H, D] = q.shape;
  const [Bk, S, Hkv, Dk] = k.shape;
  const shapes = `q ${tensorText(q)}, k ${tensorText(k)}, v ${tensorText(v)}, keyMask ${tensorText(keyMask)}`;
  if (
    q.shape.length !== 4 ||
    k.shape.length !== 4 ||
    q.dtype !== 'f32' ||
    k.dtype !== 'f32' ||
    B === undefined ||
    T === undefined ||
    H === undefined ||
    D === undefined ||
    S === undefined ||
    Hkv === undefined ||
    Bk !== B ||
    Dk !== D ||
    !sameShape(v, k.shape)
  ) {
    throw new Error(`${op}: expected q f32 [B, T, H, D] and k, v f32 [B, S, Hkv, D]; got ${shapes}`);
  }
  if (B === 0 || T === 0 || H === 0 || D === 0 || Hkv === 0 || H % Hkv !== 0) {
    throw new Error(`${op}: need non-empty shapes and H a multiple of Hkv; got ${shapes}`);
  }
  if (S < T) throw new Error(`${op}: fewer keys than queries (S ${S} < T ${T}); got ${shapes}`);
  if (keyMask) {
    const m = keyMask.shape;
    const ok = m.length === 2 ? m[0] === B && m[1] === S : m.length === 1 && m[0] === B * S;
    if (!ok || (keyMask.dtype !== 'i32' && keyMask.dtype !== 'u32')) {
      throw new Error(`${op}: keyMask must be i32 [B, S] = [${B}, ${S}] (or flat [${B * S}]); got ${shapes}`);
    }
  }
  return { B, T, S, H, Hkv, D };
}

export function checkOutput(op: string, name: string, t: Tensor, shape: readonly number[]): void {
  if (!sameShape(t, shape)) throw new Error(`${op}: ${name} ${tensorText(t)} must be f32 [${shape.join(', ')}]`);
}

/** A writable binding may not share its buffer with any other binding of the dispatch. */
export function checkDistinct(op: string, written: Record<string, Tensor>, read: Record<string, Tensor | null>): void {
  const all = Object.entries({ ...read, ...written });
  for (const [w, t] of Object.entries(written)) {
    for (const [r, u] of all) {
      if (r !== w && u && u.buffer === t.buffer) throw new Error(`${op}: ${w} and ${r} must be different tensors`);
    }
  }
}
