// PLACEHOLDER: replaced by the issue that implements `mnistc check`.
export async function check(..._args: unknown[]): Promise<number> {
  process.stderr.write("mnistc check: not yet implemented\n");
  return 1;
}
