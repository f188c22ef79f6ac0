// The screens of the app, in the order of the journey; the navigation, the Start screen's journey list and the
// router read this table. How to add one, and the screens outside the navigation: docs/ui.md ("Screens").
import type { Component } from 'svelte';
import BenchScreen from './BenchScreen.svelte';
import CompareChat from './CompareChat.svelte';
import DataScreen from './DataScreen.svelte';
import DemoScreen from './DemoScreen.svelte';
import EvaluateScreen from './EvaluateScreen.svelte';
import ExportScreen from './ExportScreen.svelte';
import MethodScreen from './MethodScreen.svelte';
import ModelScreen from './ModelScreen.svelte';
import type { ScreenId } from './screen-ids';
import StartScreen from './StartScreen.svelte';
import TrainScreen from './TrainScreen.svelte';

export type { ScreenId } from './screen-ids';

export interface ScreenDef {
  id: ScreenId;
  /** The navigation label. */
  title: string;
  /** The screen's heading (h2). */
  heading: string;
  /** What happens there, in one line (Start screen's journey list; the "coming" page). */
  summary: string;
  /** Shown in the step navigation. */
  inNav: boolean;
  /** The screen; undefined while it is not built. */
  component: Component | undefined;
}

export const SCREENS: ScreenDef[] = [
  { id: 'start', title: 'Start', heading: 'Fine-tune a language model in your browser', summary: 'Graft adapts a language model to your examples on your own GPU, through WebGPU. Nothing is uploaded: the model and your data stay on this device.', inNav: true, component: StartScreen },
  { id: 'model', title: 'Model', heading: 'Choose a model', summary: 'Pick a model that fits your device and download it.', inNav: true, component: ModelScreen },
  { id: 'data', title: 'Data', heading: 'Bring a dataset', summary: 'Bring examples, fix their problems, see what the model is trained on.', inNav: true, component: DataScreen },
  { id: 'method', title: 'Method', heading: 'Choose a method and the settings', summary: 'Find the right way to adapt the model and set up the job.', inNav: true, component: MethodScreen },
  // ── The next screens are built next: set `component` (and import it above). ──
  { id: 'train', title: 'Train', heading: 'Train', summary: 'Run the job on your GPU, watch the loss, keep checkpoints.', inNav: true, component: TrainScreen as Component },
  { id: 'chat', title: 'Chat', heading: 'Chat with the base and the tuned model', summary: 'Ask the base and the tuned model side by side.', inNav: true, component: CompareChat as Component },
  { id: 'evaluate', title: 'Evaluate', heading: 'Evaluate on held-out records', summary: 'Score the base and the tuned model on records they did not train on: BLEU-4, ROUGE and their answers.', inNav: true, component: EvaluateScreen },
  { id: 'export', title: 'Export', heading: 'Export', summary: 'Save an adapter folder, a merged model or a LLaMA-Factory job.', inNav: true, component: ExportScreen },
  { id: 'demo', title: 'Demo', heading: 'The built-in demo', summary: 'A guided run that fine-tunes a small model on a built-in dataset.', inNav: false, component: DemoScreen },
  { id: 'bench', title: 'Bench', heading: 'Benchmark', summary: 'Measure this GPU: matmul GFLOP/s against a measured peak, and training tokens/s on a model.', inNav: false, component: BenchScreen },
];

export function screen(id: ScreenId): ScreenDef {
  return SCREENS.find((s) => s.id === id) ?? SCREENS[0]!;
}
