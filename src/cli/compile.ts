// PLACEHOLDER: replaced by the issue that implements `mnistc compile`.
export async function compile(..._args: unknown[]): Promise<number> {
  process.stderr.write("mnistc compile: not yet implemented\n");
  return 1;
}
