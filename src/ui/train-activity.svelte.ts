// Whether a training run is going in this tab: the update prompt (UpdatePrompt.svelte) reads it so that a new
// app version never reloads the page in the middle of a run. Set by the training session (train-session.svelte.ts).
export const trainActivity = $state({ active: false });
