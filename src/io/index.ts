/** `columnformer/io`: the safetensors format, atomic file writes, config files and overrides. */
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
export { readConfigFile } from "./config-file.ts";
export { applyOverrides, mergeConfig, parseOverride, type Override } from "./overrides.ts";
export { formatFieldPath, formatSchemaError } from "./schema-errors.ts";

