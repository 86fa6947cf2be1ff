/**
 * Detecting events the kernel dropped: an overflow of the process's inotify queue.
 *
 * @internal
 */
import * as Fs from "node:fs"

/**
 * When the process is busy, the kernel queues inotify events for it, up to `max_queued_events` (16,384 by default)
 * for all the watches of the process; past that it drops them, and neither libuv nor chokidar says so. libuv drains
 * the queue in one go when the process is back, so every `fs.watch` callback of that drain runs before the next
 * `setImmediate`: a drain of `max_queued_events` raw events means the queue was full, and events were lost.
 */
export const inotifyQueue = {
  limit: 0,
  inBurst: 0,
  /** When the last drain ended: a change after it is in this drain or a later one. */
  lastDrainEnd: Date.now(),
  listeners: new Set<(lostSince: number) => void>()
}

export const maxQueuedEvents = (): number => {
  if (inotifyQueue.limit === 0) {
    try {
      inotifyQueue.limit = Number(Fs.readFileSync("/proc/sys/fs/inotify/max_queued_events", "utf8").trim()) || 16_384
    } catch {
      inotifyQueue.limit = 16_384
    }
  }
  return inotifyQueue.limit
}

const endOfDrain = () => {
  const count = inotifyQueue.inBurst
  const lostSince = inotifyQueue.lastDrainEnd
  inotifyQueue.inBurst = 0
  inotifyQueue.lastDrainEnd = Date.now()
  if (count >= maxQueuedEvents()) for (const listener of inotifyQueue.listeners) listener(lostSince)
}

export const onRawEvent = () => {
  if (inotifyQueue.inBurst++ === 0) setImmediate(endOfDrain)
}
