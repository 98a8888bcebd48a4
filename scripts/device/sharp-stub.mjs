// Stands in for the `sharp` package in the device bundle (scripts/prepare-device-bundle.sh): the
// GPU benchmark decodes no images, and sharp's native binaries would not travel.
export default function sharp() {
  throw new Error("sharp is not in the device bundle (scripts/prepare-device-bundle.sh stubs it)");
}
