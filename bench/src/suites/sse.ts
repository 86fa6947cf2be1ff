/**
 * `Sse.stream` against a raw `EventSource` (the same `eventsource` package) over the same local server (in a
 * worker thread), same run; and over POST (a JSON body, as model APIs take) against raw undici `fetch` + the
 * `eventsource-parser` that `eventsource` itself uses. Beside them, as context (the peers issue): the clients people
 * pick instead, `@microsoft/fetch-event-source` (GET and POST) and `launchdarkly-eventsource`. Then the added latency
 * of each at 1,000 events/s.
 */

import { fetchEventSource } from "@microsoft/fetch-event-source"
import { HttpStream } from "@streamemit/http-stream"
import { Sse } from "@streamemit/sse"
import { Effect, Fiber, Stream } from "effect"
import { EventSource } from "eventsource"
import { createParser } from "eventsource-parser"
import LaunchDarkly from "launchdarkly-eventsource"
import { fetch } from "undici"
import {
  compareRates,
  countTo,
  deferred,
  type LatencyClient,
  latencyRounds,
  latencyRows,
  memoryRows,
  peerRow,
  type Row,
  type Suite,
  slowArrayConsumer,
  slowConsumerMemory,
  throughputRow,
  withHttpServer
} from "../harness.ts"

const EVENTS = 300_000
const SIZE = 100
const LAUNCHDARKLY_EVENTS = 30_000

const rawEventSource = (url: string, count = EVENTS) =>
  new Promise<void>((resolve, reject) => {
    let events = 0
    const source = new EventSource(url)
    source.onmessage = () => {
      if (++events === count) {
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

// fetch-event-source is written for browsers: when closed it removes a `document` listener (even with
// `openWhenHidden`) and clears its retry timer through `window`, so on Node both throw. Node users stub them; so does
// this run.
const browser = globalThis as { window?: unknown; document?: unknown }
browser.window ??= globalThis
browser.document ??= { hidden: false, addEventListener: () => {}, removeEventListener: () => {} }

/** `@microsoft/fetch-event-source` (given undici's fetch, as on the other rows) until `EVENTS` events. */
const fetchEventSourcePeer = (url: string, post: boolean) => {
  const controller = new AbortController()
  let events = 0
  return new Promise<void>((resolve, reject) => {
    fetchEventSource(url, {
      ...(post ? { method: "POST", body, headers: { "content-type": "application/json" } } : {}),
      fetch: fetch as unknown as typeof globalThis.fetch,
      openWhenHidden: true,
      signal: controller.signal,
      onmessage: () => {
        if (++events === EVENTS) {
          controller.abort()
          resolve()
        }
      },
      onclose: () => reject(new Error(`fetch-event-source: closed after ${events} events`)),
      onerror: (error) => {
        controller.abort()
        reject(error)
        // Thrown: no retry.
        throw error
      }
    }).catch(reject)
  })
}

/** fetch-event-source reading `url` (no retry: an error ends it), each event's data to `onData`; returns its close. */
const openFetchEventSource = (url: string, onData: (data: string) => void): (() => void) => {
  const controller = new AbortController()
  void fetchEventSource(url, {
    fetch: fetch as unknown as typeof globalThis.fetch,
    openWhenHidden: true,
    signal: controller.signal,
    onmessage: (event) => onData(event.data),
    onerror: (error) => {
      throw error
    }
  }).catch(() => {})
  return () => controller.abort()
}

/** `launchdarkly-eventsource` until `count` events. */
const launchDarklyPeer = (url: string, count: number) =>
  new Promise<void>((resolve, reject) => {
    let events = 0
    const source = new LaunchDarkly.EventSource(url)
    source.addEventListener("message", () => {
      if (++events === count) {
        source.close()
        resolve()
      }
    })
    source.addEventListener("error", (error: { message?: string }) => {
      source.close()
      reject(new Error(`launchdarkly-eventsource: ${error.message ?? "error"} after ${events} events`))
    })
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Live heap and peak RSS growth while a consumer takes 1 ms per event for 3 s of a 300k-event response: ours,
 * raw `EventSource`, fetch-event-source and launchdarkly-eventsource, each as its users consume slowly.
 */
const memory = async (url: string): Promise<ReadonlyArray<Row>> => {
  const measure = (connect: () => Promise<() => Promise<void>>) =>
    slowConsumerMemory(async (settled) => {
      const stop = await connect()
      await sleep(3000)
      settled()
      await stop()
    })
  const queued = (open: (push: (data: string) => void) => () => void) => async () => {
    const consumer = slowArrayConsumer<string>()
    const close = open(consumer.push)
    return async () => {
      await consumer.stop()
      close()
    }
  }
  const raw = await measure(
    queued((push) => {
      const source = new EventSource(url)
      source.onmessage = (event) => push(event.data)
      return () => source.close()
    })
  )
  const ours = await measure(async () => {
    const fiber = Effect.runFork(
      Sse.stream({ url, reconnect: false }).pipe(Stream.runForEach(() => Effect.promise(() => sleep(1))))
    )
    return () => Effect.runPromise(Fiber.interrupt(fiber))
  })
  const peer = await measure(queued((push) => openFetchEventSource(url, push)))
  const launchDarkly = await measure(
    queued((push) => {
      const source = new LaunchDarkly.EventSource(url)
      source.addEventListener("message", (event) => push(event.data ?? ""))
      return () => source.close()
    })
  )
  return [
    ...memoryRows("sse", "1 ms/event consumer, 3 s of a 300k-event response", ours, raw),
    ...[
      ["fetch-event-source", peer],
      ["launchdarkly-eventsource", launchDarkly]
    ].flatMap(([name, measured]) =>
      memoryRows("sse", `peer ${name}, same consumer and response`, measured as typeof peer, raw).map((row) =>
        row.case.startsWith("peak") ? { ...row, case: `peak RSS growth, peer ${name}` } : row
      )
    )
  ]
}

const LATENCY_EVENTS = 1000
const LATENCY_ROUNDS = 7

/**
 * Added latency at 1,000 events/s: the server writes each event's time as its data (a response of 1,000 events per
 * request); raw `EventSource`, ours and each peer in turn (`latencyRounds`).
 */
const latency = (url: string) => {
  /** A client reading until `LATENCY_EVENTS`, then closed with `close`. */
  const until =
    (open: (onData: (data: string) => void) => () => void): LatencyClient =>
    async (record) => {
      const { promise, resolve } = deferred()
      let events = 0
      const close = open((data) => {
        record(Number(data))
        if (++events === LATENCY_EVENTS) resolve()
      })
      return async () => {
        await promise
        close()
      }
    }
  const clients: ReadonlyArray<readonly [string, LatencyClient]> = [
    [
      "raw",
      until((onData) => {
        const source = new EventSource(url)
        source.onmessage = (event) => onData(event.data)
        return () => source.close()
      })
    ],
    [
      "ours",
      async (record) => {
        const fiber = Effect.runFork(
          Sse.stream({ url, reconnect: false }).pipe(
            Stream.take(LATENCY_EVENTS),
            Stream.runForEach((event) => Effect.sync(() => record(Number(event.data))))
          )
        )
        return () => Effect.runPromise(Fiber.join(fiber)).then(() => {})
      }
    ],
    ["fetch-event-source", until((onData) => openFetchEventSource(url, onData))],
    [
      "launchdarkly-eventsource",
      until((onData) => {
        const source = new LaunchDarkly.EventSource(url)
        source.addEventListener("message", (event) => onData(event.data ?? ""))
        return () => source.close()
      })
    ]
  ]
  // The server starts writing when a client's request arrives: nothing to produce.
  return latencyRounds(clients, async () => {}, LATENCY_ROUNDS)
}

export const suite: Suite = {
  name: "sse",
  run: async () => [
    ...(await throughputAndMemory()),
    ...(await withHttpServer({ count: LATENCY_EVENTS, size: SIZE, format: "sse", perSecond: 1000 }, async (origin) =>
      latencyRows("sse", `at 1k events/s, median of ${LATENCY_ROUNDS} rounds`, await latency(`${origin}/events`), {
        raw: "raw",
        ours: "ours"
      })
    ))
  ]
}

const throughputAndMemory = () =>
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
    // A POST stream of ours against raw fetch + eventsource-parser.
    const againstRawPost = (stream: Stream.Stream<unknown, unknown>) =>
      compareRates({
        items: EVENTS,
        rounds: 11,
        warmup: 1,
        baseline: () => rawPost(url),
        subject: () => Effect.runPromise(Effect.asVoid(countTo(stream, EVENTS)))
      })
    const post = await againstRawPost(Sse.stream({ url, method: "POST", body: JSON.parse(body), reconnect: false }))
    // The same POST through http-stream's SSE framing (our own parser on undici's fetch, no EventSource): what a
    // parser-only path for Sse would cost (the SSE issue's "one SSE stack").
    const framed = await againstRawPost(
      HttpStream.stream({ url, framing: "sse", method: "POST", body, reconnect: false })
    )
    const rows: Array<Row> = [
      row,
      throughputRow(
        "sse",
        `${EVENTS / 1000}k × ${SIZE} B events over POST: Sse.stream vs raw fetch + eventsource-parser`,
        "events/s",
        post
      ),
      {
        ...throughputRow(
          "sse",
          `${EVENTS / 1000}k × ${SIZE} B events over POST: HttpStream.stream (framing sse) vs raw fetch + eventsource-parser`,
          "events/s",
          framed
        ),
        target: undefined
      }
    ]
    // The peers, as context: no target (the peers issue). launchdarkly-eventsource reads about 5k events/s from
    // this server, so its rounds are of 30k events (both sides).
    const peers: ReadonlyArray<[string, number, () => Promise<void>, () => Promise<void>]> = [
      [
        "fetch-event-source vs raw EventSource",
        EVENTS,
        () => fetchEventSourcePeer(url, false),
        () => rawEventSource(url)
      ],
      [
        "launchdarkly-eventsource vs raw EventSource",
        LAUNCHDARKLY_EVENTS,
        () => launchDarklyPeer(url, LAUNCHDARKLY_EVENTS),
        () => rawEventSource(url, LAUNCHDARKLY_EVENTS)
      ],
      [
        "over POST: fetch-event-source vs raw fetch + eventsource-parser",
        EVENTS,
        () => fetchEventSourcePeer(url, true),
        () => rawPost(url)
      ]
    ]
    for (const [name, items, subject, baseline] of peers) {
      const rates = await compareRates({ items, rounds: 7, warmup: 1, baseline, subject })
      rows.push(peerRow("sse", `${items / 1000}k × ${SIZE} B events: peer ${name}`, "events/s", rates))
    }
    rows.push(...(await memory(url)))
    return rows
  })
