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
 * Decodes JSON text with a `Schema` under a policy: one function per connector instance. On failure the session is
 * failed with a `Decode` error (its message starts with `where`, e.g. `channel "orders"`) or the skip is counted,
 * and the result is a failure: the caller emits nothing.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeJson = <A>(
  connector: string,
  schema: Schema.Decoder<A>,
  onError: OnDecodeError
): ((text: string, where: string | undefined, session: Driver.Session<never>) => Result.Result<A, void>) => {
  const decode = Schema.decodeUnknownResult(schema as Schema.Decoder<A, never>)
  return (text, where, session) => {
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch (error) {
      return reject(`invalid JSON: ${(error as Error).message}`, error)
    }
    const result = decode(json)
    if (Result.isSuccess(result)) return result as unknown as Result.Result<A, void>
    return reject(result.failure.message, result.failure)

    function reject(message: string, cause: unknown): Result.Result<A, void> {
      if (onError === "skip") session.skipped()
      else
        session.fail(
          ConnectorError.make(
            connector,
            new ConnectorError.Decode({ message: where === undefined ? message : `${where}: ${message}`, cause })
          )
        )
      return Result.failVoid
    }
  }
}

/**
 * Decodes JSON text with a `Schema` under a policy and pushes the value into a session (`decodeJson` for
 * connectors whose items are the payloads themselves).
 *
 * @since 0.1.0
 * @category decoding
 */
export const jsonDecoder = <A>(
  connector: string,
  schema: Schema.Decoder<A>,
  onError: OnDecodeError
): ((text: string, session: Driver.Session<A>) => boolean) => {
  const decode = decodeJson(connector, schema, onError)
  return (text, session) => {
    const result = decode(text, undefined, session)
    return Result.isSuccess(result) && session.emit(result.success)
  }
}
