package rooms

// SeatWithoutConn seats a player that has no connection and never loses its
// seat, so that a test's room stays awake and ticks: a room nobody is seated
// in sleeps. Tests only.
func SeatWithoutConn(r *Room) error {
	return r.doErr(func() error {
		p := r.nextPlayer
		if err := r.game.Join(p); err != nil {
			return err
		}
		r.nextPlayer++
		m := &member{id: p, token: r.id + "." + randomToken(), inputs: newInputQueue(r.reg.cfg.InputQueue, r.reg.cfg.MaxInputSize)}
		i, _ := r.findMember(p)
		r.members = append(r.members[:i], append([]*member{m}, r.members[i:]...)...)
		r.seats.Store(int32(len(r.members)))
		return nil
	})
}
