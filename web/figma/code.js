// Tally's Figma plugin, main thread: shows the UI (ui.html), remembers its settings in
// clientStorage, and exports the selected frame as a PNG when the UI asks.
figma.showUI(__html__, { width: 340, height: 460, themeColors: true });

figma.ui.onmessage = async (message) => {
  if (message.type === 'load-settings') {
    figma.ui.postMessage({ type: 'settings', settings: (await figma.clientStorage.getAsync('tally')) || {} });
  } else if (message.type === 'save-settings') {
    await figma.clientStorage.setAsync('tally', message.settings);
  } else if (message.type === 'export-selection') {
    const node = figma.currentPage.selection[0];
    if (!node || !('exportAsync' in node)) {
      figma.ui.postMessage({ type: 'selection-png', error: 'Select a frame first.' });
      return;
    }
    const bytes = await node.exportAsync({ format: 'PNG', constraint: { type: 'SCALE', value: 1 } });
    figma.ui.postMessage({ type: 'selection-png', bytes, name: `${node.name || 'frame'}.png` });
  } else if (message.type === 'notify') {
    figma.notify(message.text);
  }
};
