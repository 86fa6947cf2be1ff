#!/usr/bin/env node
/**
 * streamemit-tap: tap any number of push sources, chosen by URI, as one NDJSON stream.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Argument, Command, Flag } from "effect/cli"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Sources from "./Sources.ts"
import * as Tap from "./Tap.ts"

/** A flag that is off unless given. */
const onOff = (name: string, description: string) =>
  Flag.Boolean(name).pipe(Flag.withDefault(false), Flag.withDescription(description))

const duration = Flag.String("duration").pipe(
  Flag.withDescription('stop after this long, e.g. "30s", "2m", "500ms"'),
  Flag.optional
)

/** "30s", "2m", "1h", "500ms", or a Duration string such as "30 seconds". */
export const parseDuration = (text: string): Option.Option<Duration.Duration> => {
  const short = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim())
  if (short !== null) {
    const n = Number(short[1])
    const unit = { ms: "millis", s: "seconds", m: "minutes", h: "hours" }[short[2] as "ms" | "s" | "m" | "h"]
    return Duration.fromInput(`${n} ${unit}` as Duration.Input)
  }
  return Duration.fromInput(text as Duration.Input)
}

const command = Command.make(
  "streamemit-tap",
  {
    sources: Argument.String("source").pipe(
      Argument.withDescription(
        "ws(s)://…, sse+http(s)://…, http(s)://…, ndjson+http(s)://…, postgres://…?channel=…, redis://…?channel=…&pattern=…, file:///dir or a path"
      ),
      Argument.variadic()
    ),
    framing: Flag.Literals("framing", ["lines", "ndjson", "sse", "bytes"]).pipe(
      Flag.withDescription("how plain http(s):// bodies are split"),
      Flag.withDefault("lines")
    ),
    events: onOff("events", "lifecycle events in-band on stdout, not on stderr"),
    pretty: onOff("pretty", "human-readable lines (coloured on a terminal)"),
    count: Flag.Int("count").pipe(Flag.withDescription("stop after N messages"), Flag.optional),
    duration,
    stats: onOff("stats", "a live status line per source on a terminal; a summary on exit"),
    keepGoing: onOff("keep-going", "a source that fails for good is reported and dropped; the others go on"),
    demo: onOff(
      "demo",
      "start embedded sources (ws, SSE, NDJSON, a changing directory; Postgres and Redis when reachable) and tap them"
    )
  },
  (flags) =>
    Effect.gen(function* () {
      let runFor = Option.none<Duration.Duration>()
      if (Option.isSome(flags.duration)) {
        runFor = parseDuration(flags.duration.value)
        if (Option.isNone(runFor)) {
          return yield* Effect.fail(
            new Sources.UsageError({
              message: `--duration ${flags.duration.value}: not a duration (try 30s, 2m, 500ms)`
            })
          )
        }
      }
      if (Option.isSome(flags.count) && flags.count.value < 1) {
        return yield* Effect.fail(
          new Sources.UsageError({ message: `--count ${flags.count.value}: must be at least 1` })
        )
      }
      yield* Tap.run(
        {
          sources: flags.sources,
          framing: flags.framing,
          events: flags.events,
          pretty: flags.pretty,
          count: flags.count,
          duration: runFor,
          stats: flags.stats,
          keepGoing: flags.keepGoing,
          demo: flags.demo
        },
        { stdout: process.stdout, stderr: process.stderr }
      ).pipe(Effect.scoped)
    }).pipe(
      Effect.tapError((error) =>
        error._tag === "UsageError" ? Effect.sync(() => process.stderr.write(`tap: ${error.message}\n`)) : Effect.void
      )
    )
)

// `pnpm tap -- …` hands the script a leading "--": it separates pnpm's arguments from ours, not ours from each other.
const args = process.argv.slice(2)
Command.runWith(command, { version: "0.1.0" })(args[0] === "--" ? args.slice(1) : args).pipe(
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
