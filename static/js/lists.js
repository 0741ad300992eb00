/* The lists' behaviour (templates/admin/model/list.html and the lists that extend it),
 * loaded after jQuery, Bootstrap and static/js/crm.js. No inline script anywhere: the
 * markup says what it wants with data- attributes.
 *
 *   .action-checkbox   a row's checkbox: named "Select <the row's name>" for screen readers
 *                      (said here once rather than in every row of the page)
 *   [data-keep-open]   a menu holding a form (Columns, Saved filters): ticking a box or
 *                      typing in it does not close it (Bootstrap closes a menu on any click)
 *   #row-menu          the page's one row menu (the customer list): each row gets a small
 *                      button [data-row-menu] beside its checkbox that opens the menu for
 *                      that row, filling in the row's id (its checkbox, or its record link).
 *                      The menu is positioned in the viewport (position: fixed), so the
 *                      table's scrolling container cannot clip it. Keyboard: Enter or Space
 *                      opens it on its first entry, arrows and Home/End move, Escape closes
 *                      and returns to the button, Tab leaves it.
 *
 * The server decides what each entry may do: every verb is a POST with the CSRF token,
 * checked again for the role and the ids (crm/admin_views/customer_bulk.py).
 */
(function () {
  'use strict';

  document.addEventListener('click', function (event) {
    var keep = event.target.closest && event.target.closest('[data-keep-open]');
    if (keep) {
      event.stopPropagation();  // before Bootstrap's document handler closes the menu
    }
  });

  function nameOf(row) {
    var cell = row.querySelector('td.col-display_name a') || row.querySelector('td[class^="col-"]');
    return cell ? cell.textContent.trim() : '';
  }

  function idOf(row) {
    var box = row.querySelector('input.action-checkbox');
    if (box) {
      return box.value;
    }
    var link = row.querySelector('a[href*="?id="]');
    var found = link && /[?&]id=(\d+)/.exec(link.getAttribute('href'));
    return found ? found[1] : null;
  }

  document.querySelectorAll('table.model-list input.action-checkbox').forEach(function (box) {
    var row = box.closest('tr');
    var name = row && nameOf(row);
    box.setAttribute('aria-label', name ? 'Select ' + name : 'Select this record');
  });

  var menu = document.getElementById('row-menu');
  if (!menu) {
    return;
  }
  document.body.appendChild(menu);  // out of every scrolling container
  var opener = null;
  var GAP = 4;

  document.querySelectorAll('table.model-list tbody tr').forEach(function (row) {
    var cell = row.querySelector('td');
    if (!cell || idOf(row) === null) {
      return;
    }
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'row-menu-toggle';
    button.setAttribute('data-row-menu', '');
    button.setAttribute('data-testid', 'row-actions');
    button.setAttribute('aria-haspopup', 'true');
    button.setAttribute('aria-expanded', 'false');
    button.setAttribute('aria-label', 'Actions for ' + (nameOf(row) || 'this record'));
    button.textContent = '\u22EE';  // a vertical ellipsis
    cell.appendChild(button);
  });

  function items() {
    return Array.prototype.slice.call(menu.querySelectorAll('[role="menuitem"]'));
  }

  function fill(row) {
    var id = idOf(row);
    menu.querySelectorAll('[data-href]').forEach(function (link) {
      link.setAttribute('href', link.getAttribute('data-href')
        .replace(/([?&]id=)0(?=&|$)/, '$1' + encodeURIComponent(id)));
    });
    menu.querySelector('input[name="ids"]').value = id;
    var title = menu.querySelector('[data-row-menu-title]');
    if (title) {
      var ref = row.querySelector('td.col-display_name small');
      title.textContent = [nameOf(row), ref && ref.textContent].filter(Boolean).join(' · ');
    }
  }

  function place(button) {
    var box = button.getBoundingClientRect();
    menu.style.position = 'fixed';
    menu.style.top = '0px';
    menu.style.left = '0px';
    menu.classList.add('show');
    var width = menu.offsetWidth;
    var height = menu.offsetHeight;
    var viewWidth = document.documentElement.clientWidth;
    var viewHeight = document.documentElement.clientHeight;
    var top = box.bottom + GAP;
    if (top + height > viewHeight && box.top - GAP - height >= 0) {
      top = box.top - GAP - height;  // no room below: open upwards
    }
    top = Math.max(GAP, Math.min(top, viewHeight - height - GAP));
    var left = Math.max(GAP, Math.min(box.left, viewWidth - width - GAP));
    menu.style.top = top + 'px';
    menu.style.left = left + 'px';
    menu.style.maxHeight = (viewHeight - 2 * GAP) + 'px';
  }

  function open(button) {
    if (opener) {
      close(false);
    }
    var row = button.closest('tr');
    if (!row) {
      return;
    }
    fill(row);
    place(button);
    opener = button;
    button.setAttribute('aria-expanded', 'true');
    var first = items()[0];
    if (first) {
      first.focus();
    }
  }

  function close(refocus) {
    if (!opener) {
      return;
    }
    menu.classList.remove('show');
    opener.setAttribute('aria-expanded', 'false');
    if (refocus) {
      opener.focus();
    }
    opener = null;
  }

  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('[data-row-menu]');
    if (button) {
      event.preventDefault();
      if (opener === button) {
        close(true);
      } else {
        open(button);
      }
      return;
    }
    if (opener && !menu.contains(event.target)) {
      close(false);
    }
  });

  menu.addEventListener('keydown', function (event) {
    var list = items();
    var at = list.indexOf(document.activeElement);
    var next = null;
    if (event.key === 'ArrowDown') {
      next = list[(at + 1) % list.length];
    } else if (event.key === 'ArrowUp') {
      next = list[(at - 1 + list.length) % list.length];
    } else if (event.key === 'Home') {
      next = list[0];
    } else if (event.key === 'End') {
      next = list[list.length - 1];
    } else if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();  // Bootstrap would move the focus to another menu's toggle
      close(true);
      return;
    } else if (event.key === 'Tab') {
      close(true);
      return;
    }
    if (next) {
      event.preventDefault();
      event.stopPropagation();  // Bootstrap's menu keys would act on another menu
      next.focus();
    }
  });

  // A fixed menu would float away from its row: close it when the page or the table
  // scrolls, or the window changes size.
  window.addEventListener('scroll', function (event) {
    if (opener && !menu.contains(event.target)) {
      close(false);
    }
  }, true);
  window.addEventListener('resize', function () {
    close(false);
  });
})();
