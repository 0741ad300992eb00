/* A job's page (templates/admin/jobs/job.html): while the job is queued or running, read its
 * progress (the JSON at [data-job-progress]) about once a second and move the bar and the
 * numbers; once it has finished, reload the page once so that its summary, skipped items
 * and file appear. Nothing here runs on a finished job's page.
 */
(function () {
  'use strict';

  var page = document.querySelector('[data-job-progress]');
  if (!page || page.getAttribute('data-finished') === '1' || !window.fetch) {
    return;
  }
  var url = page.getAttribute('data-job-progress');
  var bar = document.getElementById('job-bar');
  var badge = page.querySelector('[data-testid="job-status"]');
  var failures = 0;
  var BADGES = {queued: 'secondary', running: 'primary', done: 'success',
                failed: 'danger', cancelled: 'warning'};

  function setText(name, value) {
    var nodes = page.querySelectorAll('[data-job-field="' + name + '"]');
    for (var i = 0; i < nodes.length; i += 1) {
      nodes[i].textContent = value;
    }
  }

  function show(data) {
    if (bar) {
      bar.value = data.percent;
      bar.textContent = data.percent + '%';
    }
    setText('percent', data.percent + '%');
    setText('done', data.text.done);
    setText('total', data.text.total);
    setText('changed', data.text.changed);
    setText('skipped', data.text.skipped);
    if (data.started) {
      setText('started', data.started);
    }
    if (badge && badge.getAttribute('data-status') !== data.status) {
      badge.className = 'badge badge-' + (BADGES[data.status] || 'secondary') + ' job-status';
      badge.setAttribute('data-status', data.status);
      badge.textContent = data.status_label;
    }
  }

  function later(delay) {
    window.setTimeout(poll, delay);
  }

  function poll() {
    window.fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/json'},
                       cache: 'no-store'})
      .then(function (response) {
        if (!response.ok) {
          throw new Error('HTTP ' + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        show(data);
        if (data.finished) {
          page.setAttribute('data-finished', '1');
          window.location.reload();
        } else {
          later(1000);
        }
      })
      .catch(function () {
        // Signed out, the job gone, the server restarting: try less often, then stop (the
        // page still says where the job stood; reloading it asks again).
        failures += 1;
        if (failures < 10) {
          later(1000 * Math.min(30, Math.pow(2, failures)));
        }
      });
  }

  later(1000);
}());
