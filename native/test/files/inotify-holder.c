/*
 * inotify-holder: an inotify instance watching <workdir>/dir (IN_CREATE | IN_DELETE, wd 1) and
 * <workdir>/file (IN_MODIFY, wd 3: wd 2 was added and removed, so the wds have a gap). After restore a
 * file created in dir is reported on wd 1 with its name, a write to file on wd 3, and nothing else.
 */
#include "victim.h"
#include <poll.h>
#include <sys/inotify.h>

static int next_event(int fd, struct inotify_event *ev, size_t size)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	if (poll(&pf, 1, 5000) != 1)
		return -1;
	return (int)read(fd, ev, size);
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	char dir[PATH_MAX], file[PATH_MAX], other[PATH_MAX], created[PATH_MAX + 8];
	snprintf(dir, sizeof dir, "%s/dir", victim_dir);
	snprintf(file, sizeof file, "%s/file", victim_dir);
	snprintf(other, sizeof other, "%s/other", victim_dir);
	snprintf(created, sizeof created, "%s/new", dir);
	int in = inotify_init1(0);
	if (in < 0 || mkdir(dir, 0700) != 0 || close(open(file, O_CREAT | O_WRONLY, 0600)) != 0 || close(open(other, O_CREAT | O_WRONLY, 0600)) != 0)
		exit(4);
	int w1 = inotify_add_watch(in, dir, IN_CREATE | IN_DELETE);
	int w2 = inotify_add_watch(in, other, IN_ATTRIB);
	if (w1 != 1 || w2 != 2 || inotify_rm_watch(in, w2) != 0)
		exit(4);
	int w3 = inotify_add_watch(in, file, IN_MODIFY);
	char buf[4096] __attribute__((aligned(8)));
	if (w3 != 3 || next_event(in, (void *)buf, sizeof buf) <= 0) /* the IN_IGNORED of wd 2 */
		exit(4);
	victim_ready();
	while (!victim_check_requested())
		victim_sleep_ms(20);
	struct inotify_event *ev = (void *)buf;
	if (close(open(created, O_CREAT | O_WRONLY, 0600)) != 0)
		fail("create %s failed", created);
	if (next_event(in, ev, sizeof buf) <= 0 || ev->wd != 1 || !(ev->mask & IN_CREATE) || strcmp(ev->name, "new") != 0)
		fail("creating dir/new: got wd %d mask %#x name \"%s\", expected wd 1 IN_CREATE \"new\"", ev->wd, ev->mask, ev->len ? ev->name : "");
	int fd = open(file, O_WRONLY);
	if (fd < 0 || write(fd, "x", 1) != 1)
		fail("write to file failed");
	close(fd);
	if (next_event(in, ev, sizeof buf) <= 0 || ev->wd != 3 || !(ev->mask & IN_MODIFY))
		fail("writing file: got wd %d mask %#x, expected wd 3 IN_MODIFY", ev->wd, ev->mask);
	victim_finish();
}
