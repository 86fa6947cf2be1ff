/**
 * The Redis Cluster hash slot of a key (CRC16-XMODEM mod 16384, with hash tags), so that each sharded channel is
 * subscribed on the master that serves it without asking the server: `cluster-key-slot`, the function ioredis
 * itself uses (a test checks it against the server's `CLUSTER KEYSLOT`).
 */
import { createRequire } from "node:module"

// A CommonJS module without types: its one function, typed here.
const calculateSlot: (key: string) => number = createRequire(import.meta.url)("cluster-key-slot")

export const slotOf = (key: string): number => calculateSlot(key)
