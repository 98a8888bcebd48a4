/**
 * The one error type of the data layer: a missing or malformed data set.
 */

/**
 * A data set cannot be opened (missing files, bad format, bad spec). The message is one
 * line saying what is missing and how to obtain it, suitable to print as is.
 */
export class DataError extends Error {
  /** @param message one line, what is wrong and how to fix it */
  constructor(message: string) {
    super(message);
    this.name = "DataError";
  }
}
