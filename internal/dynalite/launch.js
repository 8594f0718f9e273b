// Starts dynalite in memory on 127.0.0.1. Tables become ACTIVE at once.
//
// With no arguments (what the Go tests use) it listens on a free port, prints the port on stdout
// and exits when its standard input closes, so it never outlives the Go process that started it.
//
// With --port N (what `make dynamodb` uses) it listens on that port, prints the endpoint and the
// environment a client needs, and runs in the foreground until it is interrupted (Ctrl-C); it
// ignores its standard input, so it keeps running when started without a terminal.
const dynalite = require('dynalite');

const portArg = process.argv.indexOf('--port');
const standalone = portArg >= 0;
const port = standalone ? Number(process.argv[portArg + 1]) : 0;
if (standalone && !(Number.isInteger(port) && port > 0 && port < 65536)) {
  console.error('dynalite: --port needs a port number between 1 and 65535');
  process.exit(2);
}

// dynalite throws from a request's error handler when a client drops a connection in the middle
// of a request (the fault-injection tests do this on purpose, and so does a client that times
// out). That is the client's business, not a reason for the whole server to stop.
process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    return;
  }
  console.error(err);
  process.exit(1);
});

const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
// Idle keep-alive connections stay open until the client closes them, so that what a client
// does with its connections (Close releasing them, say) is all that a test sees.
server.keepAliveTimeout = 0;
server.on('error', (err) => {
  if (err.code === 'EADDRINUSE') {
    console.error(`dynalite: 127.0.0.1:${port} is in use; stop what listens there, or run \`make dynamodb DYNAMODB_PORT=8001\``);
  } else {
    console.error(`dynalite: ${err.message}`);
  }
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  if (!standalone) {
    process.stdout.write(actual + '\n');
    return;
  }
  const endpoint = `http://127.0.0.1:${actual}`;
  process.stdout.write(`Local DynamoDB (dynalite, in memory) listening on ${endpoint}; Ctrl-C stops it and forgets every table.

In another terminal, point the AWS SDK and the lddynamodb command at it (any keys work):

  export AWS_ENDPOINT_URL_DYNAMODB=${endpoint}
  export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
  export AWS_EC2_METADATA_DISABLED=true
`);
});

if (standalone) {
  process.on('SIGINT', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
} else {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
}
