/**
 * `Sse.stream` against a raw `EventSource` (the same `eventsource` package) over the same local server (in a
 * worker thread), same run; and over POST (a JSON body, as model APIs take) against raw undici `fetch` + the
 * `eventsource-parser` that `eventsource` itself uses.
 */
import { Sse } from "@streamemit/sse"
import { Effect } from "effect"
import { EventSource } from "eventsource"
import { createParser } from "eventsource-parser"
import { fetch } from "undici"
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

const body = JSON.stringify({ model: "bench", prompt: "count", stream: true })

/** POST, then the body through the parser: what a hand-written streaming client does. */
const rawPost = async (url: string) => {
  let events = 0
  const response = await fetch(url, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", accept: "text/event-stream" }
  })
  const parser = createParser({
    onEvent: () => {
      events++
    }
  })
  const decoder = new TextDecoder()
  for await (const chunk of response.body!) parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }))
  if (events !== EVENTS) throw new Error(`raw POST: ${events} events`)
}

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
      const post = await compareRates({
        items: EVENTS,
        rounds: 11,
        warmup: 1,
        baseline: () => rawPost(url),
        subject: () =>
          Effect.runPromise(
            Effect.asVoid(
              countTo(Sse.stream({ url, method: "POST", body: JSON.parse(body), reconnect: false }), EVENTS)
            )
          )
      })
      return [
        row,
        throughputRow(
          "sse",
          `${EVENTS / 1000}k × ${SIZE} B events over POST: Sse.stream vs raw fetch + eventsource-parser`,
          "events/s",
          post
        )
      ]
    })
}
