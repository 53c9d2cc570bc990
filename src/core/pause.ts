// Test-only: DUCKBAK_TEST_PAUSE=<point> stops the process at that commit instant, so a test can
// kill -9 it exactly between two renames (random kills never hit those microsecond gaps). The
// process says so on stderr, then sleeps until it is killed. Unset, this is one env lookup.

export async function pausePoint(point: string): Promise<void> {
  if (process.env.DUCKBAK_TEST_PAUSE !== point) return;
  process.stderr.write(`duckbak-test-paused ${point}\n`);
  await new Promise(() => setInterval(() => {}, 1 << 30));
}
