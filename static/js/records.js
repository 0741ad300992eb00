/* Record pages (templates/admin/customer/details.html) and the customer's edit form
 * (templates/admin/customer/edit.html), loaded after static/js/crm.js.
 *
 *   select[data-tab-select]   on a phone the record's tabs are a menu: choosing a section
 *                             shows its tab (and the address follows it, as a tab click
 *                             does); an option whose value is an address (the statement)
 *                             opens that page. The menu follows the tab shown, so a link
 *                             to #tab-timeline opens with "Timeline" chosen.
 *   details.rec-more          the record's "More" menu (a <details>, which opens and closes
 *                             without script) also closes on a click elsewhere or Escape,
 *                             as a menu does.
 *   .rec-edit-form            Flask-Admin's select boxes (Select2) draw a link with no name
 *                             in place of each <select>: it is given the field's label, so
 *                             a screen reader says "Title" rather than "link". A failed
 *                             save's list of problems takes the focus, so it is read first.
 *
 * No inline script anywhere (the Content-Security-Policy runs none): this file does it.
 */
(function () {
  'use strict';

  var $ = window.jQuery;

  function tabMenu(menu) {
    function tabFor(hash) {
      return document.querySelector('[data-hash-tabs] a[data-toggle="tab"][href="' + hash + '"]');
    }

    menu.addEventListener('change', function () {
      var value = menu.value;
      if (value.charAt(0) !== '#') {
        window.location.assign(value);
        return;
      }
      var tab = tabFor(value);
      if (tab) {
        $(tab).tab('show');
      }
    });

    $(document).on('shown.bs.tab', '[data-hash-tabs] a[data-toggle="tab"]', function (event) {
      menu.value = event.target.getAttribute('href');
    });

    var shown = document.querySelector('[data-hash-tabs] a.active[data-toggle="tab"]');
    if (shown) {
      menu.value = shown.getAttribute('href');
    }
  }

  function nameSelectBoxes(form) {
    form.querySelectorAll('.select2-container[id^="s2id_"]').forEach(function (box) {
      var id = box.id.slice(5);
      var label = document.querySelector('label[for="' + id + '"]');
      var name = label ? label.textContent.replace(/\s+/g, ' ').trim() : id;
      if (label && !label.id) {
        label.id = 'label-' + id;
      }
      // named by its label and the choice shown ("Type Private"), as the <select> would be
      box.querySelectorAll('a.select2-choice').forEach(function (el) {
        var chosen = el.querySelector('.select2-chosen');
        if (label && chosen && chosen.id) {
          el.setAttribute('aria-labelledby', label.id + ' ' + chosen.id);
        } else {
          el.setAttribute('aria-label', name);
        }
      });
      box.querySelectorAll('input').forEach(function (input) {
        if (!input.getAttribute('aria-label')) {
          input.setAttribute('aria-label', name);
        }
      });
    });
  }

  function closeMenus(except) {
    document.querySelectorAll('details.rec-more[open]').forEach(function (more) {
      if (more !== except) {
        more.removeAttribute('open');
      }
    });
  }

  document.addEventListener('click', function (event) {
    closeMenus(event.target.closest('details.rec-more'));
  });
  document.addEventListener('keydown', function (event) {
    if (event.key === 'Escape') {
      var open = document.querySelector('details.rec-more[open]');
      closeMenus(null);
      if (open) {
        open.querySelector('summary').focus();
      }
    }
  });

  if (!$) {
    return;
  }
  var menu = document.querySelector('select[data-tab-select]');
  if (menu) {
    tabMenu(menu);
  }
  var form = document.querySelector('.rec-edit-form');
  if (form) {
    // after Flask-Admin has drawn its select boxes (its own ready handler runs first), and
    // again for each contact added
    $(function () { nameSelectBoxes(form); });
    form.addEventListener('click', function (event) {
      if (event.target.closest('[data-inline-field]')) {
        window.setTimeout(function () { nameSelectBoxes(form); }, 0);
      }
    });
    var problems = document.getElementById('form-errors');
    if (problems) {
      problems.focus();
    }
  }
})();
