// Worker thread of the codec pool: compresses one member per message.
import { compressMember } from "./codec.ts";
import type { CodecRequest, CodecResponse } from "./codec-pool.ts";

declare const self: Worker;

self.onmessage = (event: MessageEvent<CodecRequest>) => {
  const { id, codec, data } = event.data;
  let reply: CodecResponse;
  try {
    const out = compressMember(codec, data);
    reply = { id, data: out, input: data };
  } catch (err) {
    reply = { id, error: err instanceof Error ? err.message : String(err) };
  }
  // The input goes back too, so the writer can fill it again instead of allocating a new one.
  self.postMessage(reply, reply.data ? [reply.data.buffer as ArrayBuffer, data.buffer as ArrayBuffer] : []);
};
