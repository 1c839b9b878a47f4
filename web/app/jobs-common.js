// Job helpers shared by the dashboard, the jobs list, the job page and the script editor.

import { api, seg } from './api.js';
import { badge, busy, confirmDialog, h, shortId, toast } from './dom.js';

/** Statuses after which a job never changes again. */
export const FINAL = new Set(['succeeded', 'failed', 'halted', 'interrupted']);

/** Every job status, in the order the filters list them. */
export const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'halted', 'interrupted'];

/** What a job ran: its script name, or the file it was queued from. */
export function jobTitle(job) {
  return job.scriptName || job.filePath || `job ${shortId(job.id)}`;
}

/** A job's status badge (with "halting" while a halt is pending). */
export function jobBadge(job) {
  if (job.haltRequested && !FINAL.has(job.status)) return badge(job.status, `${job.status} · halting`);
  return badge(job.status);
}

/**
 * A "Halt" button for a queued or running job: asks first (like Delete), then sends the
 * halt signal and calls `after(job)`.
 */
export function haltButton(job, after, { small = true } = {}) {
  const button = h('button', {
    class: ['btn', 'danger', small && 'small'], type: 'button', 'data-testid': 'halt-job',
    'aria-label': `Halt job ${shortId(job.id)}`, disabled: job.haltRequested,
  }, job.haltRequested ? 'Halting…' : 'Halt');
  button.addEventListener('click', async (e) => {
    e.stopPropagation();
    const asked = await confirmDialog(`Halt ${jobTitle(job)}?`,
      `Job ${shortId(job.id)} gets the halt signal: the script may finish its current step, then it ends as halted.`, 'Halt job');
    if (!asked) return;
    let sent = false;
    await busy(button, async () => {
      try {
        const updated = await api.del(`/v1/jobs/${seg(job.id)}`);
        toast(`Halt signal sent to ${jobTitle(job)}.`);
        sent = true;
        after(updated);
      } catch (err) {
        toast(err.message, 'error');
      }
    });
    if (!sent) return;
    button.disabled = true;
    button.textContent = 'Halting…';
  });
  return button;
}
