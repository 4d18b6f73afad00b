/** Text for SVG markup: the five characters XML gives meaning to, as character references. */
export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
