// Float64 reference for rotary position embeddings (RoPE), Hugging Face "rotate_half" convention:
// each head vector x of length D is split into halves x1 = x[0, D/2) and x2 = x[D/2, D), and pair i
// (x1[i], x2[i]) is rotated by the angle position · invFreq[i]:
//   out1 = x1·cos − x2·sin,   out2 = x2·cos + x1·sin.
// The backward pass is the transposed rotation, i.e. the rotation by −angle.
// The angles are computed here from the inverse frequencies, not read from the GPU's f32 tables.

export interface RopeShape {
  B: number;
  T: number;
  H: number;
  D: number;
}

/** Rotates every head vector of x [B, T, H, D] by `sign` · positions[b, t] · invFreq. */
function rotate(x: Float64Array, positions: ArrayLike<number>, s: RopeShape, invFreq: Float64Array, sign: 1 | -1): Float64Array {
  const { B, T, H, D } = s;
  const half = D / 2;
  const out = new Float64Array(x.length);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const pos = positions[b * T + t]!;
      for (let h = 0; h < H; h++) {
        const base = ((b * T + t) * H + h) * D;
        for (let i = 0; i < half; i++) {
          const angle = sign * pos * invFreq[i]!;
          const c = Math.cos(angle);
          const sn = Math.sin(angle);
          const x1 = x[base + i]!;
          const x2 = x[base + half + i]!;
          out[base + i] = x1 * c - x2 * sn;
          out[base + half + i] = x2 * c + x1 * sn;
        }
      }
    }
  }
  return out;
}

/** out [B, T, H, D] = x rotated by +position · invFreq. */
export function ropeForwardRef(x: Float64Array, positions: ArrayLike<number>, shape: RopeShape, invFreq: Float64Array): Float64Array {
  return rotate(x, positions, shape, invFreq, 1);
}

/** dx [B, T, H, D] = dOut rotated by −position · invFreq (the transpose of the forward rotation). */
export function ropeBackwardRef(dOut: Float64Array, positions: ArrayLike<number>, shape: RopeShape, invFreq: Float64Array): Float64Array {
  return rotate(dOut, positions, shape, invFreq, -1);
}
