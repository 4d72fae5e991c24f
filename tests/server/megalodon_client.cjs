// Plays a desktop app built on megalodon (Whalebird, Fedistar's JS cousin) against a Crosstalk
// instance: detect the server type from NodeInfo, register an app, and (given a code) finish the
// login and use the API. Prints one JSON object on stdout; any failure exits non-zero.
//
//   node megalodon_client.cjs detect BASE_URL
//   node megalodon_client.cjs register BASE_URL            -> client id/secret and the authorize URL
//   node megalodon_client.cjs use BASE_URL CLIENT_ID CLIENT_SECRET CODE
const megalodon = require('megalodon')

const OOB = 'urn:ietf:wg:oauth:2.0:oob'
const [mode, base, ...rest] = process.argv.slice(2)

async function main() {
  const sns = await megalodon.detector(base)
  if (mode === 'detect') {
    return { sns }
  }
  const client = megalodon.default(sns, base)
  if (mode === 'register') {
    const app = await client.registerApp('Desktop app', { scopes: ['read', 'write', 'follow'], redirect_uris: OOB })
    return { sns, client_id: app.client_id, client_secret: app.client_secret, url: app.url }
  }
  if (mode === 'use') {
    const [clientId, clientSecret, code] = rest
    const token = await client.fetchAccessToken(clientId, clientSecret, code, OOB)
    const user = megalodon.default(sns, base, token.access_token)
    const me = await user.verifyAccountCredentials()
    const instance = await user.getInstance()
    const posted = await user.postStatus('posted through megalodon', { visibility: 'public' })
    const local = await user.getLocalTimeline({ limit: 5 })
    const home = await user.getHomeTimeline({ limit: 5 })
    return {
      sns,
      username: me.data.username,
      version: instance.data.version,
      posted: posted.data.id,
      local: local.data.map(s => s.id),
      home: home.data.map(s => s.id),
    }
  }
  throw new Error(`unknown mode ${mode}`)
}

main().then(
  result => console.log(JSON.stringify(result)),
  error => {
    console.error(error && error.stack ? error.stack : String(error))
    process.exit(1)
  },
)
