/** Classification objective: softmax cross-entropy and top-1 accuracy. */
import { nn, numpy as np } from "../engine/jax.ts";

/** Mean cross-entropy. Consumes logits [B, C] and oneHot labels [B, C]. */
export function crossEntropy(logits: np.Array, oneHotLabels: np.Array): np.Array {
  return nn.logSoftmax(logits, -1).mul(oneHotLabels).sum(-1).mean().neg();
}

/** Number of rows whose argmax equals the label. Consumes logits [B, C] and oneHot labels [B, C]. */
export function correctCount(logits: np.Array, oneHotLabels: np.Array): np.Array {
  const top = logits.ref.max(-1, { keepdims: true });
  // the label's logit is the row maximum (ties count as correct, vanishingly rare in float32)
  const labelLogit = logits.mul(oneHotLabels).sum(-1, { keepdims: true });
  return labelLogit.greaterEqual(top).astype(np.float32).sum();
}
