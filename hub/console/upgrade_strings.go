package console

// The catalogue strings of agent upgrades (docs/upgrades.md) on the device page: the state of
// a device in its newest rollout, the agent's states first, then those the hub sets.
func init() {
	addStrings(map[string]string{
		"upgrade":             "Cập nhật",
		"upgrade.rollbacks":   "Số lần quay về bản cũ",
		"upgrade.downloading": "đang tải",
		"upgrade.waiting":     "chờ",
		"upgrade.installing":  "đang cài",
		"upgrade.checking":    "đang kiểm tra",
		"upgrade.healthy":     "hoạt động tốt",
		"upgrade.rolled_back": "đã quay về bản cũ",
		"upgrade.refused":     "bị từ chối",
		"upgrade.failed":      "lỗi",
		"upgrade.pending":     "chưa gửi",
		"upgrade.sent":        "đã gửi",
		"upgrade.cancelled":   "đã hủy",
		"upgrade.current":     "đã ở phiên bản này",
		"upgrade.cannot":      "không cập nhật được",
	}, map[string]string{
		"upgrade":             "Upgrade",
		"upgrade.rollbacks":   "Rollbacks",
		"upgrade.downloading": "downloading",
		"upgrade.waiting":     "waiting",
		"upgrade.installing":  "installing",
		"upgrade.checking":    "checking",
		"upgrade.healthy":     "healthy",
		"upgrade.rolled_back": "rolled back",
		"upgrade.refused":     "refused",
		"upgrade.failed":      "failed",
		"upgrade.pending":     "not sent yet",
		"upgrade.sent":        "sent",
		"upgrade.cancelled":   "cancelled",
		"upgrade.current":     "already at this version",
		"upgrade.cannot":      "cannot upgrade",
	})
}
