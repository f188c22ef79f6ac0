// The sizes of the tiled flash kernels (flash_attention_forward.wgsl, _backward_dq, _backward_dkdv), compiled in.
{{include:flash_work}}

const HD = {{HD}}u;    // head dim
const HDP = {{HDP}}u;  // row stride of Qs, Ks, Vs, dOs (≥ DPT·TPR, odd against bank conflicts)
const BR = {{BR}}u;    // query rows per block
const BC = {{BC}}u;    // keys per block
const TPR = {{TPR}}u;  // invocations per row the workgroup owns (a query row; a key for dk/dv)
const WG = {{WG}}u;    // invocations: TPR per owned row
const DPT = {{DPT}}u;  // ceil(HD / TPR): the head dims each invocation owns
const PST = {{PST}}u;  // row stride of the score blocks in workgroup memory
