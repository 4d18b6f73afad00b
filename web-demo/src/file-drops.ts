/** Files dropped on an element go to `onFiles`; the element carries the class `over` while files are dragged over it. */
export function acceptFileDrops(zone: HTMLElement, onFiles: (files: FileList | undefined) => void): void {
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    onFiles(e.dataTransfer?.files);
  });
}
