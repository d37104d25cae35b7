// PLACEHOLDER: replaced by the issue that implements `mnistc inspect`.
export async function inspect(..._args: unknown[]): Promise<number> {
  process.stderr.write("mnistc inspect: not yet implemented\n");
  return 1;
}
