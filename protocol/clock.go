package protocol

import "time"

// ClockOffset computes the agent's clock error the NTP way from one hello/welcome exchange:
//
//	sent        t0  agent's clock when it sent hello
//	hubReceived t1  Welcome.HelloReceivedAt
//	hubSent     t2  Welcome.HubTime
//	received    t3  agent's clock when the welcome arrived
//
// offset is hub clock minus agent clock (add it to the agent's time to get the hub's), exact
// when the two legs take equal time and otherwise off by at most roundTrip/2. roundTrip is the
// time on the network, excluding the hub's processing. Take t0 and t3 from the same
// time.Now() readings (their monotonic parts make roundTrip immune to a clock step between).
func ClockOffset(sent, hubReceived, hubSent, received time.Time) (offset, roundTrip time.Duration) {
	// Halve before adding: with an unset Pi clock (1970) each leg is ~56 years of nanoseconds.
	offset = hubReceived.Sub(sent)/2 + hubSent.Sub(received)/2
	roundTrip = received.Sub(sent) - hubSent.Sub(hubReceived)
	if roundTrip < 0 {
		roundTrip = 0
	}
	return offset, roundTrip
}
