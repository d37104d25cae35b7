// PLACEHOLDER: replaced by the issue that implements `mnistc serve`.
export async function serve(..._args: unknown[]): Promise<number> {
  process.stderr.write("mnistc serve: not yet implemented\n");
  return 1;
}
