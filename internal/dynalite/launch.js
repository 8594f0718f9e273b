// Starts dynalite in memory on a free loopback port and prints the port on stdout. Tables become
// ACTIVE at once. It exits when its standard input closes, so it never outlives the Go process
// that started it.
const dynalite = require('dynalite');
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.listen(0, '127.0.0.1', (err) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  process.stdout.write(server.address().port + '\n');
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
