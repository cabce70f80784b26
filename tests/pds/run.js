// Starts @atproto/pds (Bluesky's own PDS) for the tests: tests/pds.py runs this with the
// environment the PDS reads (PDS_PORT, PDS_DATA_DIRECTORY, PDS_DID_PLC_URL, ...) and
// NODE_PATH pointing at the cached node_modules (tests/pds/install.sh). It listens on
// 127.0.0.1 only, prints one line `{"ready": port}` once it is serving, and stops cleanly on
// SIGTERM / SIGINT or when its stdin closes (the test process went away).
'use strict'
const pdsPkg = require('@atproto/pds')

async function main() {
  const env = pdsPkg.readEnv()
  const cfg = pdsPkg.envToCfg(env)
  const secrets = pdsPkg.envToSecrets(env)
  const pds = await pdsPkg.PDS.create(cfg, secrets)
  const listen = pds.app.listen.bind(pds.app)
  pds.app.listen = (port) => listen(port, '127.0.0.1')   // loopback only
  await pds.start()
  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    try { await pds.destroy() } finally { process.exit(0) }
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.stdin.on('end', stop)
  process.stdin.resume()
  process.stdout.write(JSON.stringify({ ready: cfg.service.port }) + '\n')
}

main().catch((err) => {
  console.error('crier: the PDS failed to start:', err && err.stack ? err.stack : err)
  process.exit(1)
})
