// A scripted stand-in for the gateway: a fetch that records each batch and answers from a script.

export function fakeGateway(script = []) {
  const gateway = {
    script: [...script],
    requests: [],
    get events() {
      return this.requests.flatMap((r) => r.batch.events);
    },
    async fetch(url, init) {
      let text = init.body;
      if (init.headers['Content-Encoding'] === 'gzip') {
        const stream = new Blob([init.body]).stream().pipeThrough(new DecompressionStream('gzip'));
        text = await new Response(stream).text();
      }
      const batch = JSON.parse(text);
      gateway.requests.push({ url, headers: init.headers, batch });
      const step = gateway.script.shift() || { status: 200 };
      if (step.throw) throw new TypeError(step.throw);
      const body =
        step.body || (step.status === 200 ? { status: 'ok', processed: batch.events.length } : { status: 'error', error: `scripted ${step.status}` });
      return new Response(JSON.stringify(body), { status: step.status, headers: step.headers || {} });
    },
  };
  gateway.fetch = gateway.fetch.bind(gateway);
  return gateway;
}

export const fastRetry = { retryBaseMs: 1, retryCapMs: 5, maxRetries: 3 };

export function clock(start = Date.parse('2026-05-01T08:00:00Z')) {
  const c = { t: start, now: () => c.t, advance: (ms) => (c.t += ms) };
  return c;
}
