/** `columnformer/io`: the safetensors format and atomic file writes. */
export {
  decodeSafetensors,
  encodeSafetensors,
  expectTensor,
  readSafetensors,
  writeSafetensors,
  type SafetensorsDType,
  type SafetensorsFile,
  type TensorData,
} from "./safetensors.ts";
export { writeFileAtomic, writeFileAtomicSync } from "./atomic.ts";

