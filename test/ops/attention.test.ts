// The row kernels (bench/row-attention.ts: one workgroup per row, what the benchmark and the flash kernels'
// agreement test compare against) against the float64 reference, on the cases the flash kernels run too
// (test/helpers/attention.ts).
import { describe, it } from 'vitest';
import { attentionBackward, attentionForward } from '../../bench/row-attention';
import { ATTENTION_CASES, checkAttentionCase, checkEmptyRows, checkSingleKey, expectShapeErrors, type AttentionKernels } from '../helpers/attention';
import { testContext } from '../helpers/gpu';

const ROW: AttentionKernels = { forward: attentionForward, backward: attentionBackward };

describe('attention', () => {
  for (const c of ATTENTION_CASES) {
    it(`forward and backward: ${c.name}`, async () => {
      await checkAttentionCase(await testContext(), c, ROW, { name: `attention ${c.name}` });
    });
  }

  it('tiny B1 T1 S1 H1 D2: out = v, lse = score, dv += dOut, dq = dk = 0', async () => {
    await checkSingleKey(await testContext(), ROW);
  });

  it('a query with no visible key: out exactly 0, lse EMPTY_ROW_LSE, zero dq; gradients accumulate', async () => {
    await checkEmptyRows(await testContext(), ROW, 8);
  });

  it('rejects mismatched shapes', async () => {
    expectShapeErrors(await testContext(), ROW, 'attentionForward');
  });
});
