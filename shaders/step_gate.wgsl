// The gate of a training step's update (the trainer's overlapped steps, docs/training.md "Overlapped steps"):
// gate[0] = 1 when the step's loss sum, gradient norm and the norm of the weights it trained on (slots of its
// statistics) are all finite, else 0; the gated AdamW step reads it. The same test as the trainer's on the CPU.
fn finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(1)
fn main() {
  let ok = finite(stats[params.lossSlot]) && finite(stats[params.normSlot]) && finite(stats[params.weightSlot]);
  gate[0] = select(0u, 1u, ok);
}
