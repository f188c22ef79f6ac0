// Where an adapter (at most one per forward, of any kind) reaches into the transformer: the places the forward and
// backward call for LoRA, bottleneck adapters and prompt tuning (docs/model.md, "Adapters").
import type { GpuContext } from '../engine/context';
import { copyBlock } from '../engine/ops/copy-block';
import type { Tensor } from '../engine/tensor';
import type { LayerSaved } from './activations';
import { adapterKind, asBottleneck, asLora, type ModelAdapter } from './adapters';
import type { Batch } from './batch';
import {
  bottleneckBackward,
  bottleneckForward,
  bottleneckKey,
  bottleneckParamName,
  checkBottleneck,
  type BottleneckAdapter,
  type BottleneckSite,
} from './bottleneck';
import type { ModelConfig } from './config';
import type { Gradients } from './gradients';
import { loraParamName, type LoraAdapter, type LoraModule } from './lora';
import { layerLinears, type LayerParams, type LinearParams } from './params';
import { checkPromptAdapter, type PromptAdapter } from './prompt-tuning';

/**
 * Throws an Error naming the problem when the adapter does not fit the model: a LoRA module that is not a
 * linear layer or A/B shapes that do not fit it; bottleneck sites or shapes other than its placement needs;
 * prompt embeddings that are not [n, hidden] or leave no position for the text.
 */
export function checkAdapterFits(adapter: ModelAdapter, cfg: ModelConfig, layers: readonly LayerParams[], maxPositions: number): void {
  const kind = adapterKind(adapter);
  if (kind === 'prompt') {
    checkPromptAdapter(adapter as PromptAdapter, cfg.hiddenSize, maxPositions);
    return;
  }
  if (kind === 'bottleneck') {
    checkBottleneck(adapter as BottleneckAdapter, cfg.numLayers, cfg.hiddenSize);
    return;
  }
  const lora = adapter as LoraAdapter;
  const linears = new Map(layers.flatMap(layerLinears).map((l) => [l.module, l]));
  if (!(lora.r > 0) || !Number.isFinite(lora.alpha)) {
    throw new Error(`Adapter ${lora.name}: r ${lora.r} and lora_alpha ${lora.alpha} must be positive numbers`);
  }
  for (const [module, { a, b }] of lora.modules) {
    const lin = linears.get(module);
    if (!lin) {
      throw new Error(`Adapter ${lora.name} targets ${module}, which is not a linear layer of this ${cfg.architecture}`);
    }
    const okA = a.shape.length === 2 && a.shape[0] === lora.r && a.shape[1] === lin.inFeatures;
    const okB = b.shape.length === 2 && b.shape[0] === lin.outFeatures && b.shape[1] === lora.r;
    if (!okA || !okB) {
      throw new Error(
        `Adapter ${lora.name}: ${module} has lora_A [${a.shape.join(', ')}] and lora_B [${b.shape.join(', ')}]; expected [${lora.r}, ${lin.inFeatures}] and [${lin.outFeatures}, ${lora.r}]`,
      );
    }
  }
}

/** The LoRA module on a linear, or null (no LoRA adapter, or none on that linear). */
export function loraModuleOf(lin: LinearParams, adapter: ModelAdapter | null): LoraModule | null {
  return asLora(adapter)?.modules.get(lin.module) ?? null;
}

/** Whether the adapter has a tensor with a gradient in layer l (LoRA A/B of its linears, bottleneck weights). */
export function adapterTrainsLayer(l: number, layer: LayerParams, adapter: ModelAdapter | null, grads: Gradients): boolean {
  const lora = asLora(adapter);
  const bottleneck = asBottleneck(adapter);
  for (const lin of layerLinears(layer)) {
    if (lora?.modules.has(lin.module) && (grads.has(loraParamName(lin.module, 'A')) || grads.has(loraParamName(lin.module, 'B')))) {
      return true;
    }
  }
  for (const site of ['attn', 'mlp'] as const) {
    const key = bottleneckKey(l, site);
    if (!bottleneck?.modules.has(key)) continue;
    for (const proj of ['down', 'up'] as const) for (const what of ['weight', 'bias'] as const) if (grads.has(bottleneckParamName(key, proj, what))) return true;
  }
  return false;
}

/**
 * The bottleneck adapter at `site` of layer l over h [N, H]: returns y = h + up(act(down(h))) and keeps h
 * with the saved tensors in `saved` (or frees them when nothing is saved); without an adapter there, h.
 */
export function bottleneckForwardAt(
  ctx: GpuContext,
  l: number,
  site: BottleneckSite,
  h: Tensor,
  adapter: ModelAdapter | null,
  save: boolean,
  saved: LayerSaved['bottleneck'],
): Tensor {
  const b = asBottleneck(adapter);
  const m = b?.modules.get(bottleneckKey(l, site));
  if (!b || !m) return h;
  const y = ctx.empty(h.shape, 'f32', { label: `layer ${l} ${site} adapter output` });
  const { z, a } = bottleneckForward(ctx, y, h, m, b.nonLinearity);
  if (save) saved.set(site, { h, z, a });
  else for (const t of [h, z, a]) t.release();
  return y;
}

/**
 * The gradient of the bottleneck adapter's input at `site` of layer l, given dy (that of its output);
 * accumulates its trainable tensors' gradients. null when no adapter sits there (the input's gradient is dy).
 */
export function bottleneckBackwardAt(
  ctx: GpuContext,
  l: number,
  site: BottleneckSite,
  dy: Tensor,
  s: LayerSaved,
  adapter: ModelAdapter | null,
  grads: Gradients,
): Tensor | null {
  const b = asBottleneck(adapter);
  const key = bottleneckKey(l, site);
  const m = b?.modules.get(key);
  const saved = s.bottleneck.get(site);
  if (!b || !m) return null;
  if (!saved) throw new Error(`backward: the forward saved nothing for the adapter at ${key}`);
  const g = (proj: 'down' | 'up', what: 'weight' | 'bias') => grads.get(bottleneckParamName(key, proj, what))?.[0];
  const dh = ctx.zeros(dy.shape, 'f32', { label: `${key} input gradient` });
  const bg = { downWeight: g('down', 'weight'), downBias: g('down', 'bias'), upWeight: g('up', 'weight'), upBias: g('up', 'bias') };
  bottleneckBackward(ctx, dh, bg, dy, saved.h, saved, m, b.nonLinearity);
  return dh;
}

/** Writes the prompt's embeddings [n, H] over rows 0 .. n of each of the B sequences of T rows in x [B·T, H]. */
export function writePromptRows(ctx: GpuContext, x: Tensor, prompt: { adapter: PromptAdapter; B: number; T: number }, H: number): void {
  const size = prompt.adapter.embeddings.size;
  for (let b = 0; b < prompt.B; b++) {
    copyBlock(ctx, x, prompt.adapter.embeddings, { rows: 1, cols: size, srcStride: size, srcOffset: 0, dstStride: size, dstOffset: b * prompt.T * H });
  }
}

/**
 * The real positions of x [B·(n + T), H] (the layers' output over `full`, the batch widened by n virtual
 * positions): rows b·(n + T) + n .. of each sequence, as B blocks of T·H values, in a new tensor [B·T, H].
 */
export function realRows(ctx: GpuContext, x: Tensor, batch: Batch, full: Batch, H: number): Tensor {
  const nv = full.T - batch.T;
  const real = ctx.empty([batch.B * batch.T, H], 'f32', { label: 'residual stream (real positions)' });
  copyBlock(ctx, real, x, { rows: batch.B, cols: batch.T * H, srcStride: full.T * H, srcOffset: nv * H, dstStride: batch.T * H, dstOffset: 0 });
  return real;
}

/** realRows backwards: dx [B·T, H] placed at the real rows of a new zeroed gradient [B·(n + T), H]. */
export function widenedRows(ctx: GpuContext, dx: Tensor, batch: Batch, full: Batch, H: number): Tensor {
  const nv = full.T - batch.T;
  const dxAll = ctx.zeros([full.B * full.T, H], 'f32', { label: 'residual stream gradient' });
  copyBlock(ctx, dxAll, dx, { rows: batch.B, cols: batch.T * H, srcStride: batch.T * H, srcOffset: 0, dstStride: full.T * H, dstOffset: nv * H });
  return dxAll;
}

/** The widened batch's token ids with −1 at the n virtual rows of each sequence (they read no token embedding). */
export function realTokenIds(full: Batch, nv: number): Int32Array {
  return full.idsCpu.map((id, i) => (i % full.T < nv ? -1 : id));
}

/** dP [n, H] += dx[b, 0 .. n) for each sequence b of dx [B·(n + T), H], one accumulating copy after another (no float atomics). */
export function accumulatePromptGradient(ctx: GpuContext, dPrompt: Tensor, dx: Tensor, full: Batch, nv: number, H: number): void {
  const size = nv * H;
  for (let b = 0; b < full.B; b++) {
    copyBlock(ctx, dPrompt, dx, { rows: 1, cols: size, srcStride: size, srcOffset: b * full.T * H, dstStride: size, dstOffset: 0, accumulate: true });
  }
}
