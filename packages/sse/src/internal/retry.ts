/**
 * The `retry:` fields of an event stream, found in its raw bytes (`eventsource` parses them but keeps them
 * private).
 *
 * @internal
 */
const LF = 10
const CR = 13
const retryField = Buffer.from("retry:")

/**
 * Finds `retry:` fields in the raw bytes, which `eventsource` keeps private: a native search for the field name,
 * lines parsed only where it occurs. A line split across chunks is carried over (a retry line is short: a longer
 * unterminated tail cannot be one).
 */
export const retryScanner = (onRetry: (millis: number) => void) => {
  let carry: Buffer | undefined
  return (chunk: Uint8Array) => {
    const bytes =
      carry === undefined
        ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
        : Buffer.concat([carry, chunk])
    carry = undefined
    let from = 0
    for (;;) {
      const at = bytes.indexOf(retryField, from)
      if (at === -1) break
      from = at + retryField.length
      // A field starts a line: the first byte of the stream or of a carried line, or after CR/LF.
      if (at > 0 && bytes[at - 1] !== LF && bytes[at - 1] !== CR) continue
      let end = from
      while (end < bytes.length && bytes[end] !== LF && bytes[end] !== CR) end++
      if (end === bytes.length) {
        if (end - at <= 32) carry = Buffer.from(bytes.subarray(at))
        return
      }
      // One space after the colon is stripped; the value counts only when it is all ASCII digits.
      const value = bytes.toString("latin1", bytes[from] === 0x20 ? from + 1 : from, end)
      if (/^\d+$/.test(value)) onRetry(Number(value))
    }
    // Keep the tail after the last line end if it could be the start of a retry line.
    let lastEnd = bytes.length - 1
    while (lastEnd >= 0 && bytes[lastEnd] !== LF && bytes[lastEnd] !== CR) lastEnd--
    const tail = bytes.length - lastEnd - 1
    if (tail > 0 && tail < retryField.length && retryField.subarray(0, tail).equals(bytes.subarray(lastEnd + 1))) {
      carry = Buffer.from(bytes.subarray(lastEnd + 1))
    }
  }
}
