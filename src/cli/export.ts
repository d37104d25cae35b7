// PLACEHOLDER: replaced by the issue that implements `mnistc export`.
export async function exportModel(..._args: unknown[]): Promise<number> {
  process.stderr.write("mnistc export: not yet implemented\n");
  return 1;
}
