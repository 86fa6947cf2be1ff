/**
 * Payload decoding with a `Schema` under a policy: a payload the schema rejects fails the stream with a `Decode`
 * error, or is skipped and counted.
 *
 * @since 0.2.0
 */
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as ConnectorError from "./ConnectorError.ts"
import type * as Driver from "./Driver.ts"

/**
 * What to do with a payload the `Schema` rejects: fail the stream with a `Decode` error, or skip it (counted in
 * `streamemit_decode_skipped_total`).
 *
 * @since 0.1.0
 * @category decoding
 */
export type OnDecodeError = "fail" | "skip"

/**
 * Decodes JSON text — with a `Schema` when given, as plain JSON otherwise — under a policy: one function per
 * connector instance. On failure the session is failed with a `Decode` error (its message starts with `where`,
 * e.g. `channel "orders"` or `line 4`; a function is called only then) or the skip is counted, and the result is a
 * failure: the caller delivers nothing.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeJson = <A>(
  connector: string,
  schema: Schema.Decoder<A> | undefined,
  onError: OnDecodeError
): ((
  text: string,
  where: string | (() => string) | undefined,
  session: Driver.Session<never>
) => Result.Result<A, void>) => {
  const decode = schema === undefined ? undefined : Schema.decodeUnknownResult(schema as Schema.Decoder<A, never>)
  return (text, where, session) => {
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch (error) {
      return reject(`invalid JSON: ${(error as Error).message}`, error)
    }
    if (decode === undefined) return Result.succeed(json as A)
    const result = decode(json)
    if (Result.isSuccess(result)) return result as unknown as Result.Result<A, void>
    return reject(result.failure.message, result.failure)

    function reject(message: string, cause: unknown): Result.Result<A, void> {
      if (onError === "skip") session.skipped()
      else {
        // `where` may be a function: built only for the payload that failed (NDJSON names the line).
        const place = typeof where === "function" ? where() : where
        session.fail(
          ConnectorError.make(
            connector,
            new ConnectorError.Decode({ message: place === undefined ? message : `${place}: ${message}`, cause })
          )
        )
      }
      return Result.failVoid
    }
  }
}

/**
 * Decodes JSON text under a policy and pushes the value into a session, on the batched path (`session.push`):
 * for connectors whose items are the payloads themselves. `bytes` are counted whether or not the payload decodes.
 *
 * @since 0.1.0
 * @category decoding
 */
export const jsonDecoder = <A>(
  connector: string,
  schema: Schema.Decoder<A> | undefined,
  onError: OnDecodeError
): ((text: string, session: Driver.Session<A>, bytes?: number) => void) => {
  const decode = decodeJson(connector, schema, onError)
  return (text, session, bytes = 0) => {
    const result = decode(text, undefined, session)
    if (Result.isSuccess(result)) session.push(result.success, bytes)
    else session.received(bytes)
  }
}
