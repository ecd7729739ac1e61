// kafkajs_connect.js BOOTSTRAP
// Connects kafkajs's admin client, asks for the cluster description and
// prints it as one line of JSON on stdout:
//   {"brokers":[{"nodeId":1,"host":"127.0.0.1","port":9092}],"controller":1,"clusterId":"..."}
// Exits 0 on success; on any error prints it on stderr and exits 1.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const CONNECT_TIMEOUT_MS = 5000
const REQUEST_TIMEOUT_MS = 10000
const RETRIES = 2

async function main (bootstrap) {
  const kafka = new Kafka({
    clientId: 'chronik-it-kafkajs',
    brokers: [bootstrap],
    connectionTimeout: CONNECT_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    retry: { retries: RETRIES },
    logLevel: logLevel.ERROR
  })
  const admin = kafka.admin()
  await admin.connect()
  try {
    const cluster = await admin.describeCluster()
    process.stdout.write(JSON.stringify(cluster) + '\n')
  } finally {
    await admin.disconnect()
  }
}

if (process.argv.length !== 3) {
  process.stderr.write('usage: node kafkajs_connect.js HOST:PORT\n')
  process.exit(2)
}
main(process.argv[2]).then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`kafkajs_connect: ${err.stack || err}\n`)
    process.exit(1)
  }
)
