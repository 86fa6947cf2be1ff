/**
 * `Sse.stream` against a raw `EventSource` (the same `eventsource` package) over the same local server (in a
 * worker thread), same run.
 */
import { Sse } from "@streamemit/sse"
import { Effect } from "effect"
import { EventSource } from "eventsource"
import { compareRates, countTo, type Row, type Suite, throughputRow, withHttpServer } from "../harness.ts"

const EVENTS = 300_000
const SIZE = 100

const rawEventSource = (url: string) =>
  new Promise<void>((resolve, reject) => {
    let events = 0
    const source = new EventSource(url)
    source.onmessage = () => {
      if (++events === EVENTS) {
        source.close()
        resolve()
      }
    }
    source.onerror = (error) => {
      source.close()
      reject(new Error(`raw EventSource: ${error.message ?? "error"} after ${events} events`))
    }
  })

export const suite: Suite = {
  name: "sse",
  run: () =>
    withHttpServer({ count: EVENTS, size: SIZE, format: "sse" }, async (origin) => {
      const url = `${origin}/events`
      const rates = await compareRates({
        items: EVENTS,
        rounds: 21,
        warmup: 1,
        baseline: () => rawEventSource(url),
        subject: () => Effect.runPromise(Effect.asVoid(countTo(Sse.stream({ url, reconnect: false }), EVENTS)))
      })
      const row: Row = throughputRow(
        "sse",
        `${EVENTS / 1000}k × ${SIZE} B events: Sse.stream vs raw EventSource`,
        "events/s",
        rates
      )
      return [row]
    })
}
