/**
 * `HttpStream.stream` (NDJSON) against raw undici `fetch` + line splitting + `JSON.parse` over the same local
 * server (in a worker thread), same run.
 */
import { HttpStream } from "@streamemit/http-stream"
import { Effect, Stream } from "effect"
import { fetch } from "undici"
import { compareRates, type Row, type Suite, throughputRow, withHttpServer } from "../harness.ts"

// 2M records (≈ 0.7 s) per run: with 500k (≈ 0.2 s) a round's ratio was mostly the machine's noise. Raw against
// raw, same process: 21 rounds of 500k gave [0.80, 1.02], 15 rounds of 2M [0.97, 1.07].
const RECORDS = 2_000_000
const SIZE = 100

const rawNdjson = async (url: string) => {
  const response = await fetch(url)
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let partial = ""
  let records = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    const text = partial + decoder.decode(value, { stream: true })
    let start = 0
    for (let end = text.indexOf("\n"); end !== -1; end = text.indexOf("\n", start)) {
      JSON.parse(text.slice(start, end))
      records++
      start = end + 1
    }
    partial = text.slice(start)
  }
  return records
}

export const suite: Suite = {
  name: "http-stream",
  run: () =>
    withHttpServer({ count: RECORDS, size: SIZE, format: "ndjson" }, async (origin) => {
      const url = `${origin}/feed`
      const rates = await compareRates({
        items: RECORDS,
        rounds: 31,
        warmup: 1,
        baseline: async () => {
          const n = await rawNdjson(url)
          if (n !== RECORDS) throw new Error(`raw read ${n} records`)
        },
        subject: () =>
          Effect.runPromise(
            HttpStream.stream({ url, framing: "ndjson", reconnect: false }).pipe(
              Stream.runForEachArray(() => Effect.void)
            )
          )
      })
      const row: Row = throughputRow(
        "http-stream",
        `${RECORDS / 1e6}M × ${SIZE} B NDJSON: HttpStream.stream vs fetch + split + JSON.parse`,
        "records/s",
        rates
      )
      return [row]
    })
}
