"""Do the jobs `graft train` exports train the same tokens in LLaMA-Factory? Each case trains with Graft on the
tiny-llama fixture (node bin/graft.mjs train ...), then runs the train.yaml Graft wrote beside its result in
LLaMA-Factory from its source on the CPU, and compares the per-step losses (relative 1e-3) and the answer tokens of
every step (equal). Not part of `npm test`, which needs no Python.

  python3 scripts/llamafactory/compare.py [LLAMA_FACTORY_SRC [CASE ...]]
      LLAMA_FACTORY_SRC: the src/ folder of a work tree of LLaMA-Factory's repository (default: llamafactory/src
      beside the current folder, e.g. `git archive HEAD | tar -x -C llamafactory` in a clone);
      CASE: only these cases (sft_lora_fresh, sft_lora, sft_full, sft_freeze, dpo_lora, sharegpt_multiturn).
  Its output from the last run is in compare-output.txt beside it.

Only output_dir, logging_steps, report_to and use_cpu are overridden in LLaMA-Factory's run.

LLaMA-Factory pins older packages than the ones installed here (transformers 5.18, peft 0.21, trl 1.13,
datasets, accelerate); what this script patches to import it (import-only: nothing of it runs in an SFT, DPO,
LoRA, full or freeze run):
  - DISABLE_VERSION_CHECK=1 (its own switch for the pins);
  - torchaudio: a stub module (imported by data/mm_plugin.py for audio inputs; no audio here);
  - omegaconf: a stub module (read_args uses it to read YAML from sys.argv; this script reads train.yaml with
    PyYAML and hands the dict to run_exp, which is what llamafactory-cli does after OmegaConf.load);
  - trl.AutoModelForCausalLMWithValueHead, trl.PPOConfig, trl.PPOTrainer: empty classes (trl 1.x moved them out;
    LLaMA-Factory imports them for PPO and value heads only).
One attribute that is not import-only: trl 1.x's DPOTrainer.training_step enters
self.maybe_activation_offload_context, which LLaMA-Factory's CustomDPOTrainer never sets (it was written for trl
<= 0.24); the script sets it to contextlib.nullcontext(), what trl uses when activation offloading is off. And
DPOTrainer.compute_loss is given back trl 0.24's body (get_batch_loss_metrics, which LLaMA-Factory overrides),
since trl 1.x replaced it with code that needs attributes LLaMA-Factory's trainer does not set; and
DPOTrainer.dpo_loss, which trl 1.x dropped, is trl 0.24's sigmoid loss (label smoothing 0):
-logsigmoid(beta * ((c - r) - (ref_c - ref_r))), rewards beta * (c - ref_c), beta * (r - ref_r).
LLaMA-Factory's answer tokens per step are counted by wrapping transformers.Trainer.training_step: the labels of
each micro-batch, shifted as the loss shifts them (labels[:, 1:] != -100).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
FIXTURE = os.path.join(ROOT, 'test', 'fixtures', 'tiny-llama')
DATA = os.path.join(ROOT, 'test', 'fixtures', 'data')
HERE = os.path.dirname(os.path.abspath(__file__))

# LoRA cases start from the fixture's PEFT adapter (non-zero B) in both trainers: a fresh adapter's A is drawn by
# each trainer's own generator, which LLaMA-Factory's export warns about; from the same adapter the numbers agree.
INIT = ['--adapter_name_or_path', os.path.join(FIXTURE, 'reference', 'init_adapter')]
COMMON = ['--model', FIXTURE, '--disable_shuffling', 'true', '--logging_steps', '1', '--save_strategy', 'no', '--seed', '42']
CASES = {
    'sft_lora_fresh': ['--dataset', os.path.join(DATA, 'sft_alpaca.json'), '--finetuning_type', 'lora', '--lora_rank', '4', '--learning_rate', '1e-3',
                       '--cutoff_len', '64', '--per_device_train_batch_size', '4', '--max_steps', '4'],
    'sft_lora': [*INIT, '--dataset', os.path.join(DATA, 'sft_alpaca.json'), '--finetuning_type', 'lora', '--learning_rate', '1e-3',
                 '--cutoff_len', '64', '--per_device_train_batch_size', '4', '--max_steps', '4'],
    'sft_full': ['--dataset', os.path.join(DATA, 'sft_alpaca.json'), '--finetuning_type', 'full', '--learning_rate', '1e-4',
                 '--cutoff_len', '64', '--per_device_train_batch_size', '4', '--max_steps', '4'],
    'sft_freeze': ['--dataset', os.path.join(DATA, 'sft_alpaca.json'), '--finetuning_type', 'freeze', '--freeze_trainable_layers', '1', '--learning_rate', '1e-3',
                   '--cutoff_len', '64', '--per_device_train_batch_size', '4', '--max_steps', '4'],
    'dpo_lora': [*INIT, '--stage', 'dpo', '--dataset', os.path.join(DATA, 'dpo.json'), '--finetuning_type', 'lora', '--learning_rate', '1e-3',
                 '--pref_beta', '0.1', '--cutoff_len', '64', '--per_device_train_batch_size', '2', '--max_steps', '3'],
    'sharegpt_multiturn': [*INIT, '--dataset', os.path.join(HERE, 'multiturn_sharegpt.json'), '--finetuning_type', 'lora', '--learning_rate', '1e-3',
                           '--cutoff_len', '48', '--per_device_train_batch_size', '2', '--max_steps', '2'],
}


def run_graft(case, args, out):
    cmd = ['node', os.path.join(ROOT, 'bin', 'graft.mjs'), 'train', *COMMON, *args, '--output_dir', out]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f'{case}: graft train failed:\n{r.stderr}')
    rows = [json.loads(l) for l in open(os.path.join(out, 'metrics.jsonl')) if l.strip()]
    return [(row['step'], row['loss'], row['tokens']) for row in rows]


def run_lf(case, graft_out, lf_src):
    lf_out = os.path.join(os.path.dirname(graft_out), 'lf')
    cmd = [sys.executable, os.path.abspath(__file__), '--lf-run', lf_src, graft_out, lf_out]
    r = subprocess.run(cmd, cwd=graft_out, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f'{case}: LLaMA-Factory failed:\n{r.stderr[-4000:]}')
    got = json.load(open(os.path.join(lf_out, 'graft_compare.json')))
    return [(s, l, t) for s, l, t in zip(got['steps'], got['losses'], got['tokens'])]


def lf_run(lf_src, graft_out, lf_out):
    """In a child process, from graft_out (the folder train.yaml is run from): LLaMA-Factory's run_exp."""
    import importlib.machinery
    import types

    os.environ['DISABLE_VERSION_CHECK'] = '1'
    os.environ.setdefault('WANDB_DISABLED', 'true')

    def stub(name):
        m = types.ModuleType(name)
        m.__spec__ = importlib.machinery.ModuleSpec(name, None)
        m.__path__ = []
        sys.modules[name] = m
        return m

    stub('torchaudio')
    stub('omegaconf').OmegaConf = None
    import trl
    for name in ['AutoModelForCausalLMWithValueHead', 'PPOConfig', 'PPOTrainer']:
        if not hasattr(trl, name):
            setattr(trl, name, type(name, (), {}))
    sys.path.insert(0, lf_src)

    import torch
    import transformers
    import yaml

    tokens = {}
    original = transformers.Trainer.training_step

    def training_step(self, model, inputs, *a, **k):
        labels = inputs.get('labels')
        if labels is not None:
            step = self.state.global_step + 1
            tokens[step] = tokens.get(step, 0) + int((labels[:, 1:] != -100).sum())
        return original(self, model, inputs, *a, **k)

    transformers.Trainer.training_step = training_step
    # trl 1.x's DPOTrainer.training_step enters self.maybe_activation_offload_context, which its __init__ sets and
    # LLaMA-Factory's CustomDPOTrainer (written for trl <= 0.24) does not: a no-op context, as trl sets it when
    # activation offloading is off.
    import contextlib
    from trl import DPOTrainer
    if not hasattr(DPOTrainer, 'maybe_activation_offload_context'):
        DPOTrainer.maybe_activation_offload_context = contextlib.nullcontext()

    # trl 1.x's DPOTrainer.compute_loss is a new implementation; LLaMA-Factory's CustomDPOTrainer overrides
    # get_batch_loss_metrics, which trl <= 0.24's compute_loss called. That compute_loss, as it was:
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, metrics = self.get_batch_loss_metrics(model, inputs, train_eval='train')
        loss = loss.to(self.args.device)
        return (loss, metrics) if return_outputs else loss

    DPOTrainer.compute_loss = compute_loss

    # trl 1.x dropped DPOTrainer.dpo_loss, which LLaMA-Factory calls for pref_loss sigmoid: trl 0.24's sigmoid
    # loss (label_smoothing 0, the default LLaMA-Factory passes), as it was.
    def dpo_loss(self, chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps):
        logits = (chosen_logps - rejected_logps) - (ref_chosen_logps - ref_rejected_logps)
        losses = -torch.nn.functional.logsigmoid(self.beta * logits)
        return losses, self.beta * (chosen_logps - ref_chosen_logps).detach(), self.beta * (rejected_logps - ref_rejected_logps).detach()

    if not hasattr(DPOTrainer, 'dpo_loss'):
        DPOTrainer.dpo_loss = dpo_loss
    from llamafactory.train.tuner import run_exp

    args = yaml.safe_load(open(os.path.join(graft_out, 'train.yaml')))
    args.update({'output_dir': lf_out, 'logging_steps': 1, 'report_to': 'none', 'use_cpu': True})
    torch.manual_seed(0)
    run_exp(args)
    state = json.load(open(os.path.join(lf_out, 'trainer_state.json')))
    logs = [h for h in state['log_history'] if 'loss' in h]
    json.dump({'steps': [h['step'] for h in logs], 'losses': [h['loss'] for h in logs], 'tokens': [tokens.get(h['step']) for h in logs]},
              open(os.path.join(lf_out, 'graft_compare.json'), 'w'))


def main():
    lf_src = sys.argv[1] if len(sys.argv) > 1 else os.path.join('llamafactory', 'src')
    scratch = tempfile.mkdtemp(prefix='graft-lf-compare-')
    failed = False
    try:
        for case, args in CASES.items():
            graft_out = os.path.join(scratch, case, 'graft')
            g = run_graft(case, args, graft_out)
            l = run_lf(case, graft_out, lf_src)
            print(f'{case}')
            print(f'  {"step":>4} {"graft loss":>12} {"LF loss":>12} {"rel diff":>9} {"graft tok":>9} {"LF tok":>7}')
            if len(g) != len(l):
                print(f'  graft logged {len(g)} steps, LLaMA-Factory {len(l)}')
                failed = True
            for (gs, gl, gt), (ls, ll, lt) in zip(g, l):
                rel = abs(gl - ll) / abs(ll)
                ok = rel <= 1e-3 and gt == lt and gs == ls
                failed |= not ok
                print(f'  {gs:>4} {gl:>12.6f} {ll:>12.6f} {rel:>9.2e} {gt:>9} {lt:>7}{"" if ok else "  <-- differs"}')
        print('all cases agree: losses within 1e-3 relative, the same answer tokens every step' if not failed else 'SOME CASES DIFFER')
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--lf-run':
        lf_run(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
