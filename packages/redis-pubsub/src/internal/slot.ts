/**
 * The Redis Cluster hash slot of a key (the cluster specification's CRC16-XMODEM mod 16384, with hash tags), so
 * that each sharded channel is subscribed on the master that serves it without asking the server.
 */
const table = new Uint16Array(256)
for (let i = 0; i < 256; i++) {
  let crc = i << 8
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  table[i] = crc
}

const crc16 = (bytes: Uint8Array): number => {
  let crc = 0
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ table[((crc >> 8) ^ byte) & 0xff]!
  return crc
}

/** Only the part between the first `{` and the next `}` is hashed, when that part is not empty. */
export const slotOf = (key: string): number => {
  const bytes = Buffer.from(key, "utf8")
  const open = bytes.indexOf(0x7b)
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1)
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % 16_384
  }
  return crc16(bytes) % 16_384
}
