/** What the scale suite's measuring processes share (run with `--expose-gc`). */

/** Two full collections: what is left is what is held. */
export const gc = (): void => {
  const collect = (globalThis as { gc?: () => void }).gc
  collect?.()
  collect?.()
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** The heap in use after pending callbacks have run and a full collection. */
export const heapUsedAfterGc = async (): Promise<number> => {
  await sleep(50)
  gc()
  return process.memoryUsage().heapUsed
}
